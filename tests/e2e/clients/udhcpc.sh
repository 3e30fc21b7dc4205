#!/bin/sh
# udhcpc hook for the agent tests: applies the lease inside the instance's
# namespace and, when LEASE_OUT names a file, writes what the server sent
# there (key=value lines). Never touches /etc: a namespace shares the host's.
event="$1"
report() {
  [ -n "${LEASE_OUT:-}" ] || return 0
  cat > "$LEASE_OUT.tmp" && mv "$LEASE_OUT.tmp" "$LEASE_OUT"
}
case "$event" in
  deconfig)
    ip -4 addr flush dev "$interface" scope global 2>/dev/null ;;
  bound|renew)
    [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
    ip addr replace "$ip/${mask:-24}" dev "$interface"
    for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
    # staticroutes: "dest/len gw dest/len gw ..."
    set -- $staticroutes
    while [ $# -ge 2 ]; do
      [ "$1" != "0.0.0.0/0" ] && ip route replace "$1" via "$2" dev "$interface"
      shift 2
    done
    report <<EOT
event=$event
ip=$ip
mask=$mask
router=$router
dns=$dns
domain=$domain
hostname=$hostname
mtu=$mtu
lease=$lease
serverid=$serverid
staticroutes=$staticroutes
tftp=$tftp
bootfile=$bootfile
EOT
    ;;
  leasefail|nak)
    echo "event=$event" | report ;;
esac
exit 0
