"""Networks: the CoordGate module and the U-Net family built on it."""

from .coordgate import CoordGate, DirectGate, GateMLP
from .unet import MODEL_CLASSES, CGUNet, CoordConvUNet, UNet, build_model

__all__ = ["CoordGate", "GateMLP", "DirectGate", "UNet", "CGUNet", "CoordConvUNet", "MODEL_CLASSES", "build_model"]
