"""The known data sets: official file names, published checksums, split sizes, license, citation.

Everything here is data, so `zoo data list` and the importers read one table. Checksums are the
authors' (Fashion-MNIST's README, torchvision's mnist.py and cifar.py keep the same values):
for MNIST and Fashion-MNIST the MD5 of each *uncompressed* IDX file, so a re-compressed copy
(Debian's .gz files differ byte for byte from the authors') still verifies; for CIFAR the MD5
of the python archive and of each pickled batch inside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from zoo.core.names import did_you_mean

# How many images of the official training split are held out, stratified and seeded, as the
# validation split. The official test split is never touched.
VALIDATION_SIZE = 5000


@dataclass(frozen=True)
class OfficialFile:
    """One file as its authors distribute it, with the MD5 they publish."""

    name: str
    md5: str


@dataclass(frozen=True)
class DatasetSpec:
    """A known data set: how its files look and what it holds."""

    name: str
    title: str
    format: str  # "idx" (MNIST-style) or "cifar" (python pickles)
    image_shape: tuple[int, int, int]
    splits: dict[str, int]  # official split -> number of images
    class_names: tuple[str, ...]
    license: str
    citation: str
    homepage: str
    download_url: str  # folder (IDX) or archive (CIFAR) URL of the official files
    # IDX: split -> (images file, labels file); CIFAR: split -> batch files inside the archive.
    files: dict[str, tuple[OfficialFile, ...]] = field(default_factory=dict)
    archive: OfficialFile | None = None  # CIFAR's .tar.gz
    archive_folder: str = ""  # the folder the archive unpacks to
    meta: OfficialFile | None = None  # CIFAR's label-name file
    label_key: str = "labels"  # CIFAR pickle key holding the labels
    validation_size: int = VALIDATION_SIZE

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)


MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
# CIFAR-100's fine labels in label order (as in its `meta` file); the importer reads the names
# from the archive and refuses a file whose names differ.
CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
    "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom",
    "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
    "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
    "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle",
    "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
)

CATALOG: dict[str, DatasetSpec] = {
    spec.name: spec for spec in (
        DatasetSpec(
            name="mnist", title="MNIST handwritten digits", format="idx",
            image_shape=(28, 28, 1), splits={"train": 60000, "test": 10000},
            class_names=MNIST_CLASSES,
            license="CC BY-SA 3.0 (as stated by Keras and tfds; the original site states none)",
            citation="Y. LeCun, L. Bottou, Y. Bengio, P. Haffner. Gradient-based learning "
                     "applied to document recognition. Proc. IEEE 86(11), 1998.",
            homepage="http://yann.lecun.com/exdb/mnist/",
            # tensorflow-datasets' mirror of the official .gz files (keras.datasets.mnist
            # only offers a re-packed mnist.npz).
            download_url="https://storage.googleapis.com/cvdf-datasets/mnist/",
            files={
                "train": (OfficialFile("train-images-idx3-ubyte",
                                       "6bbc9ace898e44ae57da46a324031adb"),
                          OfficialFile("train-labels-idx1-ubyte",
                                       "a25bea736e30d166cdddb491f175f624")),
                "test": (OfficialFile("t10k-images-idx3-ubyte", "2646ac647ad5339dbf082846283269ea"),
                         OfficialFile("t10k-labels-idx1-ubyte",
                                      "27ae3e4e09519cfbb04c329615203637")),
            },
        ),
        DatasetSpec(
            name="fashion_mnist", title="Fashion-MNIST (Zalando article images)", format="idx",
            image_shape=(28, 28, 1), splits={"train": 60000, "test": 10000},
            class_names=FASHION_CLASSES, license="MIT",
            citation="H. Xiao, K. Rasul, R. Vollgraf. Fashion-MNIST: a novel image dataset for "
                     "benchmarking machine learning algorithms. arXiv:1708.07747, 2017.",
            homepage="https://github.com/zalandoresearch/fashion-mnist",
            # keras.datasets.fashion_mnist's origin of the official .gz files.
            download_url="https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
            files={
                "train": (OfficialFile("train-images-idx3-ubyte",
                                       "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
                          OfficialFile("train-labels-idx1-ubyte",
                                       "9018921c3c673c538a1fc5bad174d6f9")),
                "test": (OfficialFile("t10k-images-idx3-ubyte", "8181f5470baa50b63fa0f6fddb340f0a"),
                         OfficialFile("t10k-labels-idx1-ubyte",
                                      "15d484375f8d13e6eb1aabb0c3f46965")),
            },
        ),
        DatasetSpec(
            name="cifar10", title="CIFAR-10 (32x32 colour images, 10 classes)", format="cifar",
            image_shape=(32, 32, 3), splits={"train": 50000, "test": 10000},
            class_names=CIFAR10_CLASSES,
            license="none stated by the authors (their page asks to cite the report)",
            citation="A. Krizhevsky. Learning multiple layers of features from tiny images. "
                     "Technical report, University of Toronto, 2009.",
            homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
            download_url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
            archive=OfficialFile("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),
            archive_folder="cifar-10-batches-py",
            meta=OfficialFile("batches.meta", "5ff9c542aee3614f3951f8cda6e48888"),
            files={
                "train": (OfficialFile("data_batch_1", "c99cafc152244af753f735de768cd75f"),
                          OfficialFile("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
                          OfficialFile("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
                          OfficialFile("data_batch_4", "634d18415352ddfa80567beed471001a"),
                          OfficialFile("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb")),
                "test": (OfficialFile("test_batch", "40351d587109b95175f43aff81a1287e"),),
            },
        ),
        DatasetSpec(
            name="cifar100", title="CIFAR-100 (32x32 colour images, 100 fine classes)",
            format="cifar", image_shape=(32, 32, 3), splits={"train": 50000, "test": 10000},
            class_names=CIFAR100_CLASSES,
            license="none stated by the authors (their page asks to cite the report)",
            citation="A. Krizhevsky. Learning multiple layers of features from tiny images. "
                     "Technical report, University of Toronto, 2009.",
            homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
            download_url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
            archive=OfficialFile("cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85"),
            archive_folder="cifar-100-python",
            meta=OfficialFile("meta", "7973b15100ade9c7d40fb424638fde48"),
            label_key="fine_labels",
            files={
                "train": (OfficialFile("train", "16019d7e3df5f24257cddd939b257f8d"),),
                "test": (OfficialFile("test", "f0ef6b0ae62326f3e7ffdfab6717acfc"),),
            },
        ),
    )
}

EMBEDDED = "digits"  # the scikit-learn scans shipped with the zoo, nothing to import


class DatasetNotFound(KeyError):
    """A data set name the catalog does not know."""


def get_spec(name: str) -> DatasetSpec:
    """The catalog entry for ``name``; an unknown name fails with the known ones."""
    try:
        return CATALOG[name]
    except KeyError:
        raise DatasetNotFound(
            f"unknown data set {name!r}{did_you_mean(name, [*CATALOG, EMBEDDED])}; known: "
            f"{', '.join(CATALOG)} (and the embedded '{EMBEDDED}')"
        ) from None
