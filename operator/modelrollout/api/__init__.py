"""The ModelDeployment contract: pydantic models of spec and status, label keys, the CRD renderer.

Data only: every other layer may import it, and it imports none of them.
"""
