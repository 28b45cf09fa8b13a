"""Training side of StemLab: generated multitrack data, benchmark set, model training and evaluation."""
