"""bbtkit: gradient-free tuning of language models through their inference API alone."""
from .bbt import BBTConfig, run_bbt
from .results import Result, load_result
from .api import APIOutput, BlackBoxLM, BudgetExceededError, evaluate, label_logits, top_tokens
from .data import Example, Examples, Split, data_dir, load_split
from .models import LM, ModelNotAvailableError, load_model, tiny_model
from .runtime import pick_device, pick_dtype, set_seed
from .tasks import TASKS, LabelWordError, Task, get_task

__version__ = "0.1.0"
