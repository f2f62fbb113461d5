import { addressedToYou } from '../../src/privacy/privacy-page';

describe("the privacy page addresses the taxonomy's descriptions of the person to the subject reading it", () => {
  it.each([
    ["The person's e-mail address.", 'Your e-mail address.'],
    ['The IP address of the person\'s device.', 'The IP address of your device.'],
    ['Where the person is.', 'Where you are.'],
    ['Data about the devices the person uses.', 'Data about the devices you use.'],
    ['Biometric data used to identify the person.', 'Biometric data used to identify you.'],
    ['The person has a loyalty card.', 'You have a loyalty card.'],
    // Other wording, an extension's own, stays as it is.
    ['Payments, cards and other financial information.', 'Payments, cards and other financial information.'],
    ['A personal note about a person.', 'A personal note about a person.'],
  ])('%s', (description, addressed) => expect(addressedToYou(description)).toBe(addressed));
});
