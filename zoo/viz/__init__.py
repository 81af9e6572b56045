"""Pictures of what a trained CNN learned and how it does: filters, feature maps, receptive
fields, confusion matrix, training curves, and the lecture's pooling example.

Every function takes a loaded run (``load_run``) or plain arrays and writes one PNG with
matplotlib's headless Agg backend; the `zoo viz` commands only parse options and call them.
"""

from zoo.viz.evaluation import (
    ClassReport,
    evaluate_classes,
    format_class_table,
    plot_confusion,
    plot_history,
    plot_run_curves,
    write_class_table,
)
from zoo.viz.inputs import (
    InputImage,
    LoadedRun,
    VizError,
    find_layer,
    input_image,
    load_image,
    load_run,
    load_split,
    sample_image,
)
from zoo.viz.maps import (
    FeatureMapGrid,
    FilterGrid,
    Picture,
    layer_activations,
    plot_feature_maps,
    plot_filters,
)
from zoo.viz.pooling import (
    LECTURE_MAP,
    PoolingExample,
    format_pooling,
    parse_grid,
    plot_pooling,
    pooling_example,
)
from zoo.viz.receptive_field import (
    ReceptiveField,
    input_gradient,
    plot_receptive_field,
    receptive_field,
    unit_box,
)

__all__ = [
    "ClassReport", "FeatureMapGrid", "FilterGrid", "InputImage", "LECTURE_MAP", "LoadedRun",
    "Picture", "PoolingExample", "ReceptiveField", "VizError", "evaluate_classes",
    "find_layer", "format_class_table", "format_pooling", "input_gradient", "input_image",
    "layer_activations", "load_image", "load_run", "load_split", "parse_grid",
    "plot_confusion", "plot_feature_maps", "plot_history", "plot_filters", "plot_pooling",
    "plot_receptive_field", "plot_run_curves", "pooling_example", "receptive_field",
    "sample_image", "unit_box", "write_class_table",
]
