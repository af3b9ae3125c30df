"""Raw dataset files: the manifest that says which files a dataset has and how to
recognise them, and the checks of IDX files. Part of the data layer.
"""
