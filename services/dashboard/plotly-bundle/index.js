// The plotly.js the dashboard draws with: its core (scatter) plus bar and choropleth traces.
var Plotly = require('plotly.js/lib/core');

Plotly.register([require('plotly.js/lib/bar'), require('plotly.js/lib/choropleth')]);

module.exports = Plotly;
