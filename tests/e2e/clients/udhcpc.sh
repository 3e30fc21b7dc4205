#!/bin/sh
# udhcpc hook for the agent tests: applies the lease inside the instance's
# namespace and writes what the server sent to $LEASE_OUT (one key=value per
# line). Never touches /etc: a namespace shares the host's /etc.
out="${LEASE_OUT:-/dev/null}"
case "$1" in
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
    {
      echo "event=$1"; echo "ip=$ip"; echo "mask=$mask"; echo "router=$router"
      echo "dns=$dns"; echo "domain=$domain"; echo "hostname=$hostname"; echo "mtu=$mtu"
      echo "lease=$lease"; echo "serverid=$serverid"; echo "staticroutes=$staticroutes"
    } > "$out.tmp" && mv "$out.tmp" "$out" ;;
  leasefail|nak)
    echo "event=$1" > "$out" ;;
esac
exit 0
