"""File-drop sources: a watched folder and an SFTP account."""
