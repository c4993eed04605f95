"""The official StyleGAN2-ADA CUDA plugins (bias_act, upfirdn2d) for the benchmark scripts: the
official code must be on sys.path already."""
import sys


def official_plugins_load():
    """Compiles and loads the plugins; False where the official code falls back to its reference
    implementation. Its loader imports a built plugin by module name, and PyTorch 2 no longer puts
    the build folder on sys.path: it is added here."""
    import torch.utils.cpp_extension as cpp_extension
    from torch_utils.ops import bias_act, upfirdn2d
    for name in ["bias_act_plugin", "upfirdn2d_plugin"]:
        sys.path.insert(0, cpp_extension._get_build_directory(name, False))
    return bool(bias_act._init() and upfirdn2d._init())
