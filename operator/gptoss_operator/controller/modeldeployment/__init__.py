"""The ModelDeployment controller: gather.py -> decide.py -> the shared writer (controller/write.py)."""
