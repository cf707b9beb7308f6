"""analysis: what you do with trained models — checkpoint loading, Grad-CAM, occlusion studies,
corruption robustness and FGSM. Functions return tensors on the inputs' device."""
