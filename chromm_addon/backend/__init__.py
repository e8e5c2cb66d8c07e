"""The inference backend: video decoding, windowed network runs, the pipeline and the HTTP service.

cv2, torch, fastapi and uvicorn are imported inside functions, so importing this package is cheap.
"""
