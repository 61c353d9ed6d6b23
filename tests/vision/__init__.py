"""Tests of facedb.vision."""
