"""Stand-in for kaapana/blueprints/json_schema_templates.py (Kaapana 0.6.0),
``schema_upload_form``: the files of the uploads folder with a whitelisted ending, as
kaapana-backend's ``GET /client/files`` lists them."""

from pathlib import Path

from kaapana.harness import config


def schema_upload_form(whitelisted_file_formats: tuple = ()) -> dict:
    files = sorted(p.name for p in Path(config()["uploads"]).iterdir() if p.is_file())
    listed = [f for f in files if any(f.endswith(ending) for ending in whitelisted_file_formats)]
    return {"data_form": {"type": "object", "properties": {"action_files": {
        "title": "Objects from uploads directory",
        "description": "Relative paths to object in upload directory",
        "type": "array", "items": {"type": "string", "enum": listed}, "readOnly": False}}}}
