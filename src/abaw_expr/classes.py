"""The eight ABAW expression classes, in the order of the label files."""

CLASS_NAMES: tuple[str, ...] = (
    "Neutral",
    "Anger",
    "Disgust",
    "Fear",
    "Happiness",
    "Sadness",
    "Surprise",
    "Other",
)
NUM_CLASSES = len(CLASS_NAMES)
HEADER = ",".join(CLASS_NAMES)
UNANNOTATED = -1
