"""The code MLflow runs to load an mltc model ("models from code"): the wrapper lives in mltc."""
from mlflow.models import set_model

from mltc.serving.mlflow_model import MltcPyfuncModel

set_model(MltcPyfuncModel())
