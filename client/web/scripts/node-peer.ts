/**
 * A Carnet device in Node, built on the same TypeScript protocol module as the web
 * app, driven by JSON lines on stdin (tests/web/test_interop.py drives it against a
 * real Carnet and a Python peer built on crypto/).
 *
 *   node --experimental-websocket --import tsx scripts/node-peer.ts --url URL --code CODE
 *
 * Events (stdout, one JSON object a line): ready, message, failure, sent, error.
 * Commands (stdin): {"cmd":"direct","to":PERSON,"text":T} (finds or creates the direct
 * conversation), {"cmd":"create","kind":K,"members":[PERSON...],"title":T} (answers
 * with a conversation event), {"cmd":"send","conversation":C,"text":T},
 * {"cmd":"add","conversation":C,"person":P} (answers with a conversation event; the
 * membership event that follows rotates our sender key), {"cmd":"quit"}.
 */

import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';

import { HttpApi } from '../src/client/api.ts';
import { Device } from '../src/client/device.ts';
import { sodiumReady } from '../src/protocol/sodium.ts';

function emit(event: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { url: { type: 'string' }, code: { type: 'string' } } });
  if (!values.url || !values.code) throw new Error('--url and --code are required');
  await sodiumReady();
  const api = new HttpApi(values.url);
  const state = await Device.enrol(api, values.code, Math.floor(Date.now() / 1000));
  const device = new Device(api, state);
  await device.connect({
    onMessage: (m) =>
      emit({ event: 'message', text: m.text, sender_person: m.senderPerson, sender_device: m.senderDevice, group: m.group, conversation: m.conversation, to: m.toPerson }),
    onFailure: (envelopeId) => emit({ event: 'failure', envelope_id: envelopeId }),
    onClose: (code) => emit({ event: 'closed', code }),
    onEvent: (frame) => emit({ event: 'membership', conversation: frame.conversation, action: frame.event.action }),
    onServerError: (code, message) => emit({ event: 'server_error', code, message }),
  });
  emit({ event: 'ready', device_id: state.deviceId, person_id: state.personId });
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    const command = JSON.parse(line) as { cmd: string; to?: string; text?: string; conversation?: string; members?: string[]; kind?: string; title?: string; person?: string };
    try {
      if (command.cmd === 'quit') break;
      if (command.cmd === 'direct') {
        const conversation = await device.direct(command.to ?? '');
        const { sent, bridge } = await device.sendText(conversation, command.text ?? '');
        emit({ event: 'sent', message_id: sent.message_id, conversation: sent.conversation, bridge });
      } else if (command.cmd === 'create') {
        const kind = command.kind === 'direct' || command.kind === 'class' || command.kind === 'announcement' ? command.kind : 'group';
        const conversation = await device.createConversation({ kind, members: command.members ?? [], title: command.title ?? '' });
        emit({ event: 'conversation', id: conversation.id, members: conversation.members });
      } else if (command.cmd === 'add') {
        const conversation = await api.addMember(device.token, command.conversation ?? '', command.person ?? '');
        emit({ event: 'conversation', id: conversation.id, members: conversation.members });
      } else if (command.cmd === 'send') {
        const conversation = await api.conversation(device.token, command.conversation ?? '');
        const { sent, bridge } = await device.sendText(conversation, command.text ?? '');
        emit({ event: 'sent', message_id: sent.message_id, conversation: sent.conversation, bridge });
      } else {
        emit({ event: 'error', message: `unknown command ${command.cmd}` });
      }
    } catch (error) {
      emit({ event: 'error', message: String(error) });
    }
  }
  device.close();
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    emit({ event: 'error', message: String(error) });
    process.exit(1);
  },
);
