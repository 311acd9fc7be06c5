"""A file and a block several apply tests share: the file has two ``with open(path`` lines, so
the block's anchor is ambiguous and the deterministic path refuses it (the model path runs)."""

LOAD_SAVE = """def load(path):
    with open(path) as f:
        data = f.read()
    return data


def save(path, data):
    with open(path, "w") as f:
        f.write(data)
    return len(data)
"""

ENCODING_BLOCK = """    with open(path, encoding="utf-8") as f:
        # ... existing code ...
"""
