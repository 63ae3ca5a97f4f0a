"""Models: the deep autoencoder (U-/I-AutoRec, DeepRec)."""
