"""The ``ansible_*`` variables Ansible reads for a Windows host: a misspelling of one is ignored by
Ansible without a word (``ansible_pasword``: no password), so ``lync2fa validate`` names the
variable meant. Sources: the winrm and psrp connection, runas become and powershell shell plugins'
documented variables, and Ansible's connection/become magic variables
(``ansible.constants.MAGIC_VARIABLE_MAPPING``); a test keeps this list covering them.
"""

from __future__ import annotations

# ansible_winrm_* variables Ansible's winrm connection plugin and pywinrm understand (the plugin
# passes any ansible_winrm_<pywinrm argument> on).
WINRM_VARS = frozenset(
    f"ansible_winrm_{n}"
    for n in (
        "scheme",
        "path",
        "transport",
        "server_cert_validation",
        "ca_trust_path",
        "cert_pem",
        "cert_key_pem",
        "kerberos_delegation",
        "kerberos_hostname_override",
        "message_encryption",
        "credssp_disable_tlsv1_2",
        "credssp_auth_mechanism",
        "credssp_minimum_version",
        "send_cbt",
        "proxy",
        "operation_timeout_sec",
        "read_timeout_sec",
        "connection_timeout",
        "kinit_cmd",
        "kinit_args",
        "kinit_env_vars",
        "kinit_mode",
        "user",
        "password",
        "pass",
        "service",
        "realm",
        "reconnection_retries",
        "reconnection_backoff",
        "keytab",
        "noprofile",
        "ca_trust",
        "auth_timeout",
        "shell",
        "port",
        "host",
    )
)

PSRP_VARS = frozenset(
    f"ansible_psrp_{n}"
    for n in (
        "auth",
        "ca_cert",
        "cert_trust_path",
        "cert_validation",
        "certificate_key_pem",
        "certificate_pem",
        "configuration_name",
        "connection_backoff",
        "connection_timeout",
        "credssp_auth_mechanism",
        "credssp_disable_tlsv1_2",
        "credssp_minimum_version",
        "host",
        "ignore_proxy",
        "max_envelope_size",
        "message_encryption",
        "negotiate_delegate",
        "negotiate_hostname_override",
        "negotiate_send_cbt",
        "negotiate_service",
        "operation_timeout",
        "path",
        "port",
        "protocol",
        "proxy",
        "read_timeout",
        "reconnection_backoff",
        "reconnection_retries",
        "user",
    )
)

# The connection, shell and become variables every connection plugin shares (magic variables),
# and those of the runas become and powershell shell plugins.
COMMON_VARS = frozenset(
    {
        "ansible_host",
        "ansible_port",
        "ansible_user",
        "ansible_password",
        "ansible_connection",
        "ansible_connection_user",
        "ansible_shell_type",
        "ansible_shell_executable",
        "ansible_module_compression",
        "ansible_pipelining",
        "ansible_timeout",
        "ansible_private_key_file",
        "ansible_network_os",
        "ansible_async_dir",
        "ansible_remote_tmp",
        "ansible_become",
        "ansible_become_method",
        "ansible_become_user",
        "ansible_become_password",
        "ansible_become_pass",
        "ansible_become_exe",
        "ansible_become_flags",
        "ansible_runas_user",
        "ansible_runas_pass",
        "ansible_runas_flags",
        # SSH-only names Ansible still maps (an inventory shared with Linux hosts has them)
        "ansible_ssh_host",
        "ansible_ssh_user",
        "ansible_ssh_pass",
        "ansible_ssh_port",
        "ansible_ssh_pipelining",
        "ansible_ssh_timeout",
        "ansible_ssh_private_key_file",
        "ansible_ssh_executable",
        "ansible_ssh_common_args",
        "ansible_ssh_extra_args",
        "ansible_ssh_transfer_method",
        "ansible_sftp_extra_args",
        "ansible_scp_extra_args",
        "ansible_docker_extra_args",
    }
)

ANSIBLE_VARS = COMMON_VARS | WINRM_VARS | PSRP_VARS
