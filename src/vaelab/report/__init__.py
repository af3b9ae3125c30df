"""The pages people read: the summary of every experiment beside its published
figure, and the literature table.

May import: every layer but tools.
"""
