"""bbtkit: gradient-free tuning of language models through their inference API alone."""
from . import cmaes, fireworks, loop, mezo, objectives, optimizers, plots, progress, projection, runtime, spaces, zo
from .ajo import AJOConfig, run_ajo, run_feature_mlp
from .api import AdapterSet, APIOutput, BlackBoxLM, BudgetExceededError, evaluate, label_logits
from .generate import Completion, GenerativeLM
from .reasoning import extract_answer, load_reasoning
from .bbt import BBTConfig, run_bbt
from .bbtv2 import BBTv2Config, run_bbtv2
from .calibration import Calibration
from .dfo_lora import DFOLoRAConfig, run_dfo_lora
from .eot import EoTConfig, ReasoningResult, run_eot, run_reasoning
from .evoprompt import EvoPromptConfig, run_evoprompt
from .ipl import IPLConfig, run_ipl
from .leaderboard import load_leaderboard
from .loop import Trace, tune
from .progress import track
from .methods import METHODS, get_method
from .mezo import MeZOConfig, run_backprop, run_mezo
from .data import Example, Examples, Split, data_dir, load_split
from .models import LM, ModelNotAvailableError, load_model, tiny_model
from .results import Result, calls_to_reach, load_result
from .shared_runs import run_or_load
from .runtime import pick_device, pick_dtype, set_seed
from .tasks import TASKS, LabelWordError, Task, get_task
from .task_folders import FolderReport, check_task_folder, reference_scores
from .widgets import show, top_tokens
from .exercises import check
from .zo_sgd import ZOConfig, run_zo

__version__ = "0.1.0"
