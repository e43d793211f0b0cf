"""Grading one submission and batches of them: intake -> execute -> check -> score -> record."""
