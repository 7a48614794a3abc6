import { LabIcon } from '@jupyterlab/ui-components';

const svgstr = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <circle cx="5" cy="6" r="2.5"/>
    <circle cx="5" cy="18" r="2.5"/>
    <circle cx="19" cy="12" r="2.5"/>
    <path d="M7 7l9.6 4.2-.8 1.6L6.2 8.6zM6.2 15.4l9.6-4.2.8 1.6L7 17z"/>
  </g>
</svg>`;

export const llmopsIcon = new LabIcon({ name: 'llmops-magics:sidebar', svgstr });
