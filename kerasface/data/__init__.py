"""Training data: identity folders, P x K batches, insightface RecordIO and Fashion-MNIST."""

from kerasface.data.balanced import IdentitySampler, identity_balanced
from kerasface.data.folders import image_folder, list_image_folder, load_class_names, save_class_names
from kerasface.data.idx import load_fashion_mnist, parse_idx, read_idx
from kerasface.data.images import is_readable_image
from kerasface.data.recordio import RecordHeader, RecordIOReader, read_recordio, recordio_dataset, unpack_record

__all__ = [
    "IdentitySampler",
    "RecordHeader",
    "RecordIOReader",
    "identity_balanced",
    "image_folder",
    "is_readable_image",
    "list_image_folder",
    "load_class_names",
    "load_fashion_mnist",
    "parse_idx",
    "read_idx",
    "read_recordio",
    "recordio_dataset",
    "save_class_names",
    "unpack_record",
]
