import './base.css';
import './lineage.css';
import './traces.css';
