from ..ops import *  # noqa
from ..ops import Activation, Loss, LOSSES  # noqa
