"""Reads the metadata service at 169.254.169.254 with cloud-init's own code,
as an instance booting on OpenStack would: the OpenStack datasource
(`DataSourceOpenStack`, which crawls with `helpers.openstack` and
`helpers.ec2`) and its network configuration, converted from
network_data.json against the namespace's own NICs. Runs inside the
instance's namespace (so /sys/class/net is the instance's) with the Debian
package's tree on PYTHONPATH; writes nothing outside a temporary directory.
Prints one JSON document."""
import json
import sys
import tempfile

from cloudinit import distros, helpers
from cloudinit.sources import DataSourceOpenStack as ds_mod

URL = sys.argv[1] if len(sys.argv) > 1 else "http://169.254.169.254"

# Debian 12's cloud-init checks DMI for "OpenStack Nova" inside _get_data; a
# namespace has no DMI of its own.
ds_mod.detect_openstack = lambda *a, **k: True

with tempfile.TemporaryDirectory() as tmp:
    paths = helpers.Paths({"cloud_dir": tmp, "run_dir": tmp})
    distro = distros.fetch("debian")("debian", {}, paths)
    sys_cfg = {"datasource_list": ["OpenStack"], "datasource": {"OpenStack": {
        "metadata_urls": [URL], "max_wait": 10, "timeout": 5, "retries": 2}}}
    ds = ds_mod.DataSourceOpenStack(sys_cfg, distro, paths)
    found = ds._get_data()
    out = {"found": bool(found)}
    if found:
        md = dict(ds.metadata)
        md.pop("random_seed", None)
        out.update({
            "metadata_address": ds.metadata_address,
            "metadata": md,
            "instance_id": ds.get_instance_id(),
            "public_keys": ds.get_public_ssh_keys(),
            "availability_zone": ds.availability_zone,
            "userdata": (ds.userdata_raw or b"").decode() if isinstance(ds.userdata_raw, bytes)
            else ds.userdata_raw,
            "ec2": ds.ec2_metadata,
            "network_config": ds.network_config,
        })
    print(json.dumps(out, default=str))
