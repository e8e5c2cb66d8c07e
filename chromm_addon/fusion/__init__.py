"""Test-time modules: views file in, take out (association, fusion, scale, floor, tracking).

Entry point: `pipeline.fuse_views`. See docs/test-time-modules.md.
"""
