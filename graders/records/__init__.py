"""What grading leaves behind: result.json files and the SQLite gradebook."""
