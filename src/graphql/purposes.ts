/** Purpose lists shared by a relation and the fields of the records it leads to. */
export const PAYMENT_PURPOSES = ['essential.service.payment_processing', 'essential.legal_obligation', 'analytics.reporting', 'essential.fraud_detection'];
export const WATCH_HISTORY_PURPOSES = ['personalize.content', 'analytics.reporting', 'marketing.advertising', 'functional.service.improve'];
export const CONSENT_RECORD_PURPOSES = ['essential.legal_obligation'];
