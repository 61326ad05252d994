"""Importing torchvision without importing ``torch._dynamo``: about 2 s of the command's
start-up on a 2-core CPU, a third of the wait before ``predict --video``'s first frame.

``torchvision.ops.roi_align`` imports ``is_compile_supported`` from ``torch._dynamo.utils`` at
module level, and every ``import torchvision`` goes through it (``torchvision`` -> ``models``
-> ``ops``), although the same module's ``lazy_compile`` was written so that importing
torchvision would not import dynamo (pytorch/vision#8436). This project never calls
``roi_align``. So, while torchvision is imported, ``torch._dynamo.utils`` is a stand-in whose
``is_compile_supported``, and any other attribute, imports the real module when first used; the
stand-in is taken out of ``sys.modules`` as soon as torchvision is in, so that
``torch.compile`` and whatever else imports dynamo later gets the real module. Nothing changes
but when dynamo is imported.
"""

from __future__ import annotations

import importlib
import sys
import types

_NAME = "torch._dynamo.utils"


def _real_module() -> types.ModuleType:
    if isinstance(sys.modules.get(_NAME), _DeferredModule):
        del sys.modules[_NAME]
    return importlib.import_module(_NAME)


class _DeferredModule(types.ModuleType):
    def __getattr__(self, name: str):
        if name.startswith("__"):  # the import system's probes (__path__, ...): not a package
            raise AttributeError(name)
        return getattr(_real_module(), name)


def _is_compile_supported(device_type):
    return _real_module().is_compile_supported(device_type)


def import_torchvision() -> types.ModuleType:
    """``import torchvision``, without importing ``torch._dynamo`` if it is not in yet."""
    if "torchvision" not in sys.modules and _NAME not in sys.modules:
        standin = _DeferredModule(_NAME)
        standin.is_compile_supported = _is_compile_supported
        sys.modules[_NAME] = standin
        try:
            import torchvision  # noqa: F401
        finally:
            if sys.modules.get(_NAME) is standin:
                del sys.modules[_NAME]
    return importlib.import_module("torchvision")
