/**
 * Exceptions of the protocol module (docs/protocol-e2e.md §12).
 *
 * Tree, following crypto/errors.py:
 *
 *     CarnetCryptoError        root; carries statusHint
 *     ├── InvalidMessage       anything received was not acceptable (opaque)
 *     └── CryptoUsageError     local code called the module wrongly (our bug)
 *
 * InvalidMessage always has the same message, so nothing about *why* a message
 * was refused can leak to a peer or become an oracle.
 */

export class CarnetCryptoError extends Error {
  readonly statusHint: number = 400;
}

export class InvalidMessage extends CarnetCryptoError {
  override readonly statusHint = 400;

  constructor() {
    super('invalid message');
    this.name = 'InvalidMessage';
  }
}

export class CryptoUsageError extends CarnetCryptoError {
  override readonly statusHint = 500;

  constructor(message: string) {
    super(message);
    this.name = 'CryptoUsageError';
  }
}
