"""vaelab: reproducible autoencoder and VAE experiments, orchestrated by DVC.

The library is a stack of layers, each a package that may import only the layers listed
before it (tests/test_layers.py checks it):

    core -> models -> objectives -> config -> data -> runtime -> pictures -> training
         -> evaluation -> report -> tools

A package's __init__ holds only its docstring, so importing one module of a package loads
that module alone, and dvc.yaml can name exactly the code each stage runs.
"""
