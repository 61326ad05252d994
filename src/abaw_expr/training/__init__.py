"""Training: the LightningModule (``module``), its losses, the loop with its callbacks and
run files (``loop``), feature extraction for a frozen backbone (``extraction``) and ablations
over variants and seeds (``ablation``). Only this package imports Lightning; importing the
package itself imports nothing."""
