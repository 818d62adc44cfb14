"""Webhooks in (alerts and automations place calls) and out (call status events to the operator's URL).

In: ``inbound`` (the ``/webhooks/<kind>/<source>`` blueprint), ``sources`` (WEBHOOKS_FILE and
auth), ``adapters`` (Grafana, Alertmanager, generic JSON to call requests), ``template``.
Out: ``outbound.StatusNotifier`` (stream events to delivery jobs), ``delivery`` (the RQ job),
``signing`` (Voiceagent-Signature), ``guard`` (the SSRF check).  See docs/webhooks.md.
"""
