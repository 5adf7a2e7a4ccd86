"""Repository tooling, kept out of the `vae_utils` package that Colab installs; run from the repository root.

- `python -m tools.tutorial`: run every notebook in order with papermill and time it (`make tutorial`,
  `make notebooks` with `--in-place`);
- `python -m tools.readme`: regenerate the generated sections of README.md and docs/*.md (`--check` only compares);
- `python -m tools.badges`: point every Colab and Binder badge at `[tool.vae_utils] github` (`--check` only reports);
- `python -m tools.nbclean notebooks/*.ipynb`: strip volatile notebook metadata (`--check` only reports);
- `tools.kernels`: papermill on a kernel manager that encrypts the kernel's transport (no kernel warnings).
"""
