"""Studio: a no-code fine-tuning studio for image and text classifiers."""
