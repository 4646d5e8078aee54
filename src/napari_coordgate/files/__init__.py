"""Files: images read lazily and written atomically (:mod:`.images`), batches of them (:mod:`.batch`), and the
one atomic writer every file of the package goes through (:mod:`.atomic`)."""

from .atomic import apply_umask, atomic_write
from .batch import FileEvent, FileOptions, is_batch, iter_deblur_file, iter_deblur_files, plan_batch
from .images import ImageSource, check_output, image_format, open_image, write_image

__all__ = ["atomic_write", "apply_umask", "open_image", "write_image", "image_format", "check_output",
           "ImageSource", "FileOptions", "FileEvent", "is_batch", "plan_batch", "iter_deblur_file",
           "iter_deblur_files"]
