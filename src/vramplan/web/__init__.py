"""The web shell: a FastAPI app (`create_app`) over the same Python API as the CLI, plus one offline static page.

Needs the `web` extra (`pip install "vramplan[web]"`); `vramplan serve` runs it with uvicorn.
"""
