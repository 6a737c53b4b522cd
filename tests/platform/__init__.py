"""Test-only stand-ins for the parts of a Kaapana 0.6 platform that cannot run here.

Each module starts a real server in the role of one Kaapana service, configured the way Kaapana
configures it (the Kaapana source file is named in each module): Keycloak's token endpoint
(``issuer``), OpenSearch with the security plugin (``opensearch``), CTP + dcm4chee (``pacs``,
Orthanc), MinIO (``bucket``), and recording servers for the kaapana-backend and the
access-information-interface (``backend``). None of this ships in srcohort.
"""
