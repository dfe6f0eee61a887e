# The configuration every burst node gets from its masterless `puppet apply`.
# `$root` is "" on a real host and the lab host's own directory in the lab.
class burst_node (
  String $root,
  String $node_name,
  Integer[1, 65535] $agent_port,
  String $motd,
) {
  file { ["${root}/etc", "${root}/etc/burst"]:
    ensure => directory,
    mode   => '0755',
  }

  file { "${root}/etc/burst/node-agent.conf":
    ensure  => file,
    mode    => '0644',
    content => "# managed by puppet (burst)\nnode_name = ${node_name}\nlisten_port = ${agent_port}\n",
  }

  file { "${root}/etc/motd":
    ensure  => file,
    mode    => '0644',
    content => "${motd}\n",
  }
}
