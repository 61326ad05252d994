"""Reading Aff-Wild2 as ABAW ships it: annotations, frame index, windows, images."""
