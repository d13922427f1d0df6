"""Every differentiable operation, by family. Importing this package registers them all in the op table.

Each family module lists its public functions in ``__all__``; they become ``deltagrad.<name>``.
"""

from deltagrad.ops import activation, compare, conv, elementwise, indexing, inplace, linalg, loss, pool, reduce, shape
from deltagrad.ops.activation import *  # noqa: F403
from deltagrad.ops.compare import *  # noqa: F403
from deltagrad.ops.conv import *  # noqa: F403
from deltagrad.ops.elementwise import *  # noqa: F403
from deltagrad.ops.indexing import *  # noqa: F403
from deltagrad.ops.linalg import *  # noqa: F403
from deltagrad.ops.loss import *  # noqa: F403
from deltagrad.ops.pool import *  # noqa: F403
from deltagrad.ops.reduce import *  # noqa: F403
from deltagrad.ops.shape import *  # noqa: F403

__all__ = [name for family in (elementwise, compare, reduce, shape, indexing, linalg, conv, pool, activation, loss)
           for name in family.__all__]
