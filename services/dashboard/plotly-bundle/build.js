// Build the dashboard's partial plotly.js bundle the way plotly.js builds its own dist files.
const esbuild = require('esbuild');
const { version } = require('plotly.js/package.json');

esbuild
    .build({
        entryPoints: ['index.js'],
        outfile: process.argv[2],
        format: 'iife',
        globalName: 'Plotly',
        bundle: true,
        minify: true,
        banner: {
            js: `/*! plotly.js v${version} (core, bar, choropleth) | (c) Plotly, Inc. | MIT licence */`,
        },
        legalComments: 'eof',
        // maplibre's stylesheet is required only for map traces, which this bundle leaves out.
        loader: { '.css': 'empty' },
        define: { global: 'window', 'define.amd': 'false', 'process.env.NODE_DEBUG': 'false' },
        target: 'es2016',
        logLevel: 'info',
    })
    .catch(() => process.exit(1));
