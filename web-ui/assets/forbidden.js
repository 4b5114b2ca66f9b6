// The admin pages' refusal page: only translations to apply.
import { t, applyTranslations, bindSwitcher, onLangChange } from './i18n.js';

applyTranslations();
document.title = t('forbidden.title');
onLangChange(() => { document.title = t('forbidden.title'); });
bindSwitcher(document.getElementById('lang-switch'));
