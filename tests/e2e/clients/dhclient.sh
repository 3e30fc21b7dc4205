#!/bin/sh
# dhclient hook for the agent tests (the stock dhclient-script would rewrite
# the host's /etc/resolv.conf): applies the lease inside the namespace and
# writes what the server sent to $LEASE_OUT.
out="${LEASE_OUT:-/dev/null}"
case "$reason" in
  BOUND|RENEW|REBIND|REBOOT)
    [ -n "$new_interface_mtu" ] && ip link set dev "$interface" mtu "$new_interface_mtu"
    ip addr replace "$new_ip_address/$new_subnet_mask" dev "$interface"
    for r in $new_routers; do ip route replace default via "$r" dev "$interface"; break; done
    {
      echo "event=$reason"; echo "ip=$new_ip_address"; echo "mask=$new_subnet_mask"
      echo "router=$new_routers"; echo "dns=$new_domain_name_servers"
      echo "domain=$new_domain_name"; echo "hostname=$new_host_name"
      echo "mtu=$new_interface_mtu"; echo "lease=$new_dhcp_lease_time"
      echo "serverid=$new_dhcp_server_identifier"
      echo "classless=$new_rfc3442_classless_static_routes"
    } > "$out.tmp" && mv "$out.tmp" "$out" ;;
esac
exit 0
