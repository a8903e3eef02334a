"""Strategies applied to the training split: resampling and weighting (``fit_resample``)."""
from mltc.strategies.chain import SamplerChain
from mltc.strategies.mlenn import MLeNN
from mltc.strategies.mlsmote import MLSMOTE
from mltc.strategies.mlsol import MLSOL
from mltc.strategies.none import NoStrategy
from mltc.strategies.remedial import REMEDIAL
from mltc.strategies.ros_rus import LPROS, LPRUS, MLROS, MLRUS

__all__ = ["NoStrategy", "MLROS", "MLRUS", "LPROS", "LPRUS", "MLSMOTE", "REMEDIAL", "MLSOL", "MLeNN", "SamplerChain"]
