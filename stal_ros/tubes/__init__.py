# Copyright 2026 The stal_ros Authors
# Licensed under the Apache License, Version 2.0
"""⑦ Online action tubes (ROAD, Singh et al. 2017; paper §4.7) and their offline trimming.

``linker`` is the fast online linker; ``reference`` the plain ROAD loop it must equal (the
readable specification); ``smoothing`` the online score smoothing applied before it;
``matching`` and ``slots`` the linker's association and its slot arrays; ``trim`` ROAD's
offline temporal trimming for the evaluation.  The values the linker hands out, ``Tube`` and
``LinkerStep``, live in ``stal_ros.structures``.
"""

from stal_ros.tubes.linker import OnlineTubeLinker
from stal_ros.tubes.smoothing import ScoreSmoother
from stal_ros.tubes.trim import detected_tube, trim_tube, trim_tubes

__all__ = ['OnlineTubeLinker', 'ScoreSmoother', 'detected_tube', 'trim_tube', 'trim_tubes']
