"""bbtkit: gradient-free tuning of language models through their inference API alone."""
from .course import cmaes, plots
from .optim import fireworks, optimizers, zo
from .tuning import loop, objectives, progress, projection, spaces
from .whitebox import mezo
from . import runtime
from .methods.ajo import AJOConfig, run_ajo, run_feature_mlp
from .api.blackbox import AdapterSet, APIOutput, BlackBoxLM, BudgetExceededError, evaluate, label_logits
from .api.generate import Completion, GenerativeLM
from .api.reference import ReferenceScorer
from .api.remote import connect
from .data.reasoning import extract_answer, load_reasoning
from .methods.bbt import BBTConfig, run_bbt
from .methods.bbtv2 import BBTv2Config, run_bbtv2
from .tuning.calibration import Calibration
from .methods.dfo_lora import DFOLoRAConfig, run_dfo_lora
from .methods.eot import EoTConfig, ReasoningResult, run_eot, run_reasoning
from .methods.bbt_generation import GenerationConfig, run_bbt_generation
from .methods.evoprompt import EvoPromptConfig, run_evoprompt
from .methods.ipl import IPLConfig, run_ipl
from .course.leaderboard import load_leaderboard
from .tuning.loop import Trace, tune
from .tuning.progress import track
from .methods.registry import METHODS, get_method
from .whitebox.mezo import MeZOConfig, run_backprop, run_mezo
from .data.splits import Example, Examples, Split, data_dir, load_split
from .model.load import LM, ModelNotAvailableError, load_model, tiny_model
from .tuning.result_builder import load_result
from .tuning.results import Result, calls_to_reach
from .course.shared_runs import run_or_load
from .runtime import pick_device, pick_dtype, set_seed
from .data.tasks import TASKS, LabelWordError, Task, get_task
from .course.task_folders import FolderReport, check_task_folder, reference_scores
from .api.published import top_tokens
from .course.widgets import show
from .course.exercises import check
from .methods.zo_sgd import ZOConfig, run_zo

__version__ = "0.1.0"
