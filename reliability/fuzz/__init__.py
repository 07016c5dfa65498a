"""Coverage-guided fuzzing (atheris) of the input surfaces: targets and a time-bounded runner."""
