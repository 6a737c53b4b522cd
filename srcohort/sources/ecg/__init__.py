"""ECG files of every vendor format -> one ``EcgRecording``."""
